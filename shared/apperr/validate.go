package apperr

import (
	"errors"
	"strings"

	errorsv1 "github.com/shopfn/shopfn/proto/shopfn/errors/v1"
)

// Validator is a message with protoc-gen-validate's generated methods.
type Validator interface {
	ValidateAll() error
}

// pgvError is the shape of every error protoc-gen-validate generates: one
// field, why it failed, and (for embedded messages) the nested cause.
type pgvError interface {
	Field() string
	Reason() string
	Cause() error
}

// multiError is the shape of the generated XxxMultiError types.
type multiError interface {
	AllErrors() []error
}

// Validate runs m's generated rules and returns an Invalid error listing
// every violated field by its proto path, or nil.
func Validate(m Validator) error {
	err := m.ValidateAll()
	if err == nil {
		return nil
	}
	return FromValidation(err)
}

// FromValidation converts an error returned by a generated ValidateAll into
// an Invalid error with one field violation per broken rule.
func FromValidation(err error) *Error {
	var fields []FieldViolation
	collect(err, "", &fields)
	msg := "invalid request"
	if len(fields) > 0 {
		parts := make([]string, len(fields))
		for i, f := range fields {
			parts[i] = f.Field + ": " + f.Description
		}
		msg = "invalid request: " + strings.Join(parts, "; ")
	}
	return &Error{Kind: Invalid, Reason: errorsv1.ErrorReason_INVALID_ARGUMENT, Message: msg, Fields: fields}
}

func collect(err error, prefix string, out *[]FieldViolation) {
	if err == nil {
		return
	}
	var multi multiError
	if errors.As(err, &multi) {
		for _, e := range multi.AllErrors() {
			collect(e, prefix, out)
		}
		return
	}
	var v pgvError
	if !errors.As(err, &v) {
		*out = append(*out, FieldViolation{Field: strings.TrimSuffix(prefix, "."), Description: err.Error()})
		return
	}
	path := prefix + fieldPath(v.Field())
	if cause := v.Cause(); cause != nil {
		collect(cause, path+".", out)
		return
	}
	*out = append(*out, FieldViolation{Field: path, Description: v.Reason()})
}

// fieldPath converts a generated field reference ("Lines[2]",
// "DisplayName") into proto path syntax ("lines[2]", "display_name").
func fieldPath(goName string) string {
	name, index, _ := strings.Cut(goName, "[")
	if index != "" {
		return snakeCase(name) + "[" + index
	}
	return snakeCase(name)
}
