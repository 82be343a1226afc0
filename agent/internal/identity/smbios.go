package identity

import "encoding/binary"

// SMBIOS (DMTF DSP0134) structure layout: the parts of the table that describe the processor.
const (
	smbiosHeaderLen     = 4    // type, length, handle (2)
	smbiosTypeProcessor = 4    // Processor Information
	smbiosTypeEnd       = 127  // End-of-Table
	smbiosProcVersion   = 0x10 // offset of the Processor Version string number in type 4
	smbiosProcMaxSpeed  = 0x14 // WORD, MHz: the most the socket supports (2.0+)
	smbiosProcCurSpeed  = 0x16 // WORD, MHz: the speed set at boot (2.0+)
)

// smbiosProcessor is what the first processor structure (type 4) of an SMBIOS table says.
type smbiosProcessor struct {
	// Version is the Processor Version string ("Ampere(R) Altra(R) Processor"); "" when
	// there is none.
	Version string
	// MaxMHz and CurrentMHz are Max Speed and Current Speed in MHz; 0 means unknown, as
	// in the standard, and also stands for a structure too short to hold them.
	MaxMHz, CurrentMHz uint16
}

// parseSMBIOSProcessor returns the first processor structure of an SMBIOS table
// (sys/firmware/dmi/tables/DMI), the zero value when there is none or the table is corrupt
// before it. /sys/class/dmi/id has no processor fields, and on arm64 the version string is
// the only place that names the product ("Ampere(R) Altra(R) Processor") rather than the
// core, and Current Speed the only one that names the nominal clock.
func parseSMBIOSProcessor(table []byte) smbiosProcessor {
	for len(table) >= smbiosHeaderLen {
		typ, length := table[0], int(table[1])
		if length < smbiosHeaderLen || length > len(table) {
			return smbiosProcessor{} // corrupt: the formatted area runs past the table
		}
		// The string set follows the formatted area and ends with two NULs.
		end := length
		for end+1 < len(table) && (table[end] != 0 || table[end+1] != 0) {
			end++
		}
		if end+1 >= len(table) {
			return smbiosProcessor{} // unterminated string set
		}
		if typ == smbiosTypeProcessor {
			var p smbiosProcessor
			if length > smbiosProcVersion {
				p.Version = smbiosString(table[length:end+1], table[smbiosProcVersion])
			}
			if length >= smbiosProcCurSpeed+2 {
				p.MaxMHz = binary.LittleEndian.Uint16(table[smbiosProcMaxSpeed:])
				p.CurrentMHz = binary.LittleEndian.Uint16(table[smbiosProcCurSpeed:])
			}
			return p
		}
		if typ == smbiosTypeEnd {
			return smbiosProcessor{}
		}
		table = table[end+2:]
	}
	return smbiosProcessor{}
}

// smbiosString returns string number n (1-based; 0 means none) of a NUL-separated string set.
func smbiosString(set []byte, n byte) string {
	if n == 0 {
		return ""
	}
	for i := byte(1); len(set) > 0; i++ {
		s := set
		j := 0
		for j < len(s) && s[j] != 0 {
			j++
		}
		if i == n {
			return string(s[:j])
		}
		if j == len(s) {
			break
		}
		set = s[j+1:]
	}
	return ""
}
