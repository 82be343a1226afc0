package identity

// SMBIOS (DMTF DSP0134) structure layout: the parts of the table that name the processor.
const (
	smbiosHeaderLen     = 4    // type, length, handle (2)
	smbiosTypeProcessor = 4    // Processor Information
	smbiosTypeEnd       = 127  // End-of-Table
	smbiosProcVersion   = 0x10 // offset of the Processor Version string number in type 4
)

// smbiosProcessorVersion returns the Processor Version string of the first processor
// structure in an SMBIOS table (sys/firmware/dmi/tables/DMI), "" when there is none.
// /sys/class/dmi/id has no processor fields, and on arm64 this string is the only place that
// names the product ("Ampere(R) Altra(R) Processor") rather than the core.
func smbiosProcessorVersion(table []byte) string {
	for len(table) >= smbiosHeaderLen {
		typ, length := table[0], int(table[1])
		if length < smbiosHeaderLen || length > len(table) {
			return "" // corrupt: the formatted area runs past the table
		}
		// The string set follows the formatted area and ends with two NULs.
		end := length
		for end+1 < len(table) && (table[end] != 0 || table[end+1] != 0) {
			end++
		}
		if end+1 >= len(table) {
			return "" // unterminated string set
		}
		if typ == smbiosTypeProcessor && length > smbiosProcVersion {
			return smbiosString(table[length:end+1], table[smbiosProcVersion])
		}
		if typ == smbiosTypeEnd {
			return ""
		}
		table = table[end+2:]
	}
	return ""
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
