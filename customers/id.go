package customers

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// CheckCustomerID says why a customer id is not acceptable: 1–200 characters of valid
// UTF-8 without control characters.
func CheckCustomerID(id string) error {
	switch {
	case id == "":
		return errors.New("customer id is empty")
	case !utf8.ValidString(id):
		return errors.New("customer id is not valid UTF-8")
	case utf8.RuneCountInString(id) > 200:
		return errors.New("customer id is longer than 200 characters")
	case strings.IndexFunc(id, unicode.IsControl) >= 0:
		return errors.New("customer id contains a control character")
	}
	return nil
}
