package gcs
