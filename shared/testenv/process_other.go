//go:build !unix

package testenv

// platformProcess is empty: emulators are not run on this system.
type platformProcess struct{}

// launch reports the emulators as not available: running them relies on
// unix process groups.
func launch(launcher string, args []string) (*process, error) {
	return nil, &unavailableError{reason: "emulators are run on unix systems only"}
}

// stop does nothing: no emulator is started on this system.
func (p *process) stop() error { return nil }
