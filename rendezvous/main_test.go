package rendezvous

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test must leave no goroutines behind once its clients are closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
