//go:build !unix && !windows && !js && !wasip1

package netkit

func errnoKindOf(error) Kind { return "" }
