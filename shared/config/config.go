// Package config reads a deployable's settings from the environment and
// describes them for the start-up log.
//
// Every deployable has one typed struct, read once in main with Load. Every
// field is an environment variable named by its `envconfig` tag, with a
// `default` that works on a laptop, so `go run` needs no set-up. Fields
// tagged `secret:"true"` are masked whenever the config is logged. Shared
// parts (serving, telemetry, auth) are embedded structs, so their variables
// keep the same names in every deployable.
package config

import (
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// Load fills spec (a pointer to a struct) from the environment, applying the
// defaults of its tags.
func Load(spec any) error {
	if err := envconfig.Process("", spec); err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	return nil
}

// masked replaces a secret's value in logs. An unset secret is logged as
// empty, so "is it configured?" stays answerable from the log.
const masked = "***"

// LogValue describes spec for a structured log, one attribute per setting
// keyed by its environment variable, with secrets masked.
func LogValue(spec any) slog.Value {
	v := reflect.ValueOf(spec)
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return slog.GroupValue()
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return slog.AnyValue(spec)
	}
	return slog.GroupValue(attrs(v)...)
}

func attrs(v reflect.Value) []slog.Attr {
	var out []slog.Attr
	t := v.Type()
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		if !f.IsExported() || f.Tag.Get("ignored") == "true" {
			continue
		}
		if f.Anonymous && fv.Kind() == reflect.Struct {
			out = append(out, attrs(fv)...)
			continue
		}
		key := f.Tag.Get("envconfig")
		if key == "" {
			key = f.Name
		}
		switch {
		case f.Tag.Get("secret") == "true" && !fv.IsZero():
			out = append(out, slog.String(key, masked))
		case fv.Type() == reflect.TypeFor[time.Duration]():
			out = append(out, slog.String(key, fv.Interface().(time.Duration).String()))
		case fv.Kind() == reflect.Struct:
			out = append(out, slog.Any(key, LogValue(fv.Interface())))
		default:
			out = append(out, slog.Any(key, fv.Interface()))
		}
	}
	return out
}
