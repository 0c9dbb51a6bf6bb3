// Command protoprint writes the google/api protos that our service protos
// import (annotations.proto, http.proto) under proto/, printed back from the
// descriptors compiled into google.golang.org/genproto/googleapis/api.
//
// No module served to us ships those .proto sources, but their Go packages
// carry the full file descriptors, options and extensions included (not the
// comments). buf needs the sources to compile the google.api.http options;
// their Go code is not generated again (buf.gen.yaml excludes
// proto/google), since genproto already provides it.
//
// Usage (make generate runs it):
//
//	go run ./tools/protoprint -out proto
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/jhump/protoreflect/v2/protoprint"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// sourceModule is the module whose compiled descriptors are printed.
const sourceModule = "google.golang.org/genproto/googleapis/api"

func main() {
	out := flag.String("out", "proto", "root of the proto tree to write google/api/*.proto into")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "protoprint:", err)
		os.Exit(1)
	}
}

// files are the descriptors to print: what google.api.http needs.
func files() []protoreflect.FileDescriptor {
	return []protoreflect.FileDescriptor{
		annotations.File_google_api_annotations_proto,
		annotations.File_google_api_http_proto,
	}
}

func run(root string) error {
	header := fmt.Sprintf(`// Copyright 2025 Google LLC
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
//     http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

// Printed by tools/protoprint from the descriptor compiled into
// %s %s (comments are not kept there).
// DO NOT EDIT: run make generate.

`, sourceModule, moduleVersion(sourceModule))

	p := protoprint.Printer{}
	for _, fd := range files() {
		var buf bytes.Buffer
		buf.WriteString(header)
		if err := p.PrintProtoFile(fd, &buf); err != nil {
			return fmt.Errorf("print %s: %w", fd.Path(), err)
		}
		path := filepath.Join(root, filepath.FromSlash(fd.Path()))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// moduleVersion is the version of module linked into this binary.
func moduleVersion(module string) string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, d := range info.Deps {
			if d.Path == module {
				if d.Replace != nil {
					d = d.Replace
				}
				return d.Version
			}
		}
	}
	return "(unknown version)"
}
