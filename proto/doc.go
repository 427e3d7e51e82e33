// Package pb holds the records that travel through the buffer, generated from
// flowgate.proto: the protobuf types (protoc-gen-go) and their fast codec
// (protoc-gen-go-vtproto: marshalling without reflection, unmarshalling into
// records kept from the last message, their bytes copied or, with
// UnmarshalVTUnsafe, left in the message they were read from). Regenerate
// with `go generate ./proto` (needs protoc, protoc-gen-go and
// protoc-gen-go-vtproto v0.6.0); the generated files are committed.
package pb

//go:generate protoc --go_out=. --go_opt=paths=source_relative flowgate.proto
//go:generate protoc --go-vtproto_out=. --go-vtproto_opt=paths=source_relative,features=marshal+unmarshal+unmarshal_unsafe+size+pool,pool=github.com/flowgate/flowgate/proto.Flow,pool=github.com/flowgate/flowgate/proto.Batch flowgate.proto
