module github.com/flowgate/flowgate/benchmarks

go 1.26.8

// The harness's own module, so that its load tools and plotting never
// become dependencies of the appliance; it uses the appliance's test
// helpers from the working tree.
replace github.com/flowgate/flowgate => ../

require (
	github.com/flowgate/flowgate v0.0.0-00010101000000-000000000000
	github.com/klauspost/compress v1.20.3
	golang.org/x/net v0.62.0
)

require (
	github.com/netsampler/goflow2/v2 v2.2.6 // indirect
	golang.org/x/sys v0.49.0 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)
