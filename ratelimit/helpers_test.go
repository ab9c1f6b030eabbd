package ratelimit

import (
	"strconv"
	"strings"
)

func contains(s, sub string) bool { return strings.Contains(s, sub) }
func itoa(i int) string           { return strconv.Itoa(i) }
