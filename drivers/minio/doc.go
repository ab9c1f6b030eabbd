package minio
