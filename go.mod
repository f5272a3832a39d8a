module github.com/konveyor/kai-entrypoint

go 1.26.0

require (
	github.com/hashicorp/go-multierror v1.1.1
	github.com/kelseyhightower/envconfig v1.4.0
	golang.org/x/crypto v0.59.0
	golang.org/x/net v0.63.0
)

require (
	github.com/hashicorp/errwrap v1.0.0 // indirect
	golang.org/x/text v0.44.0 // indirect
)
