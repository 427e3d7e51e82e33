// Package pb holds the records that travel through the buffer, generated from
// flowgate.proto. Regenerate with `go generate ./proto` (needs protoc and
// protoc-gen-go); the generated file is committed.
package pb

//go:generate protoc --go_out=. --go_opt=paths=source_relative flowgate.proto
