//go:build !unix

package hints

func isAddrInUse(error) bool { return false }
