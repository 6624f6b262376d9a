package danubetest

import (
	"strings"
	"unicode"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// validTopicName applies the broker's validate_topic_format: exactly three
// '/'-separated parts, each made of Unicode alphanumerics, '_' and '-'.
// Empty parts pass, so "/default/" and "x/default/t" are accepted.
func validTopicName(name string) bool {
	parts := strings.Split(name, "/")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		for _, r := range p {
			if !isRustAlphanumeric(r) && r != '_' && r != '-' {
				return false
			}
		}
	}
	return true
}

// isRustAlphanumeric mirrors Rust's char::is_alphanumeric: the Unicode
// Alphabetic property (letters, Nl, Other_Alphabetic) or Numeric (N*).
func isRustAlphanumeric(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Other_Alphabetic, r)
}

// namespaceOf returns the namespace part of a validated topic name.
func namespaceOf(name string) string {
	return strings.Split(name, "/")[1]
}

func errInvalidTopic(name string) error {
	return status.Errorf(codes.InvalidArgument, "The topic: %s has an invalid format, should be: /namespace_name/topic_name", name)
}
