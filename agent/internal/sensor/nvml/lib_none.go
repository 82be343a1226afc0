//go:build !(linux && nvml_dlopen)

package nvml

import "errors"

// libraryBuiltIn is false: this build reads NVML through nvidia-smi only, and stays a static
// binary (see the package documentation).
const libraryBuiltIn = false

func openLibrary(string) (backend, error) {
	return nil, errors.New("nvml library support not built in (build tag nvml_dlopen)")
}
