package layer

import (
	"aerodisk/internal/diskerr"
)

// Stats is what Check found.
type Stats struct {
	DataBlocks int64 // blocks with a data cluster
	ZeroBlocks int64 // blocks marked zero
	Tables     int64 // L2 tables
	Clusters   int64 // clusters between data_offset and the allocation end
	Leaked     int64 // clusters nothing names (overwritten by zero entries, or a crash's unnamed appends)
}

// Check walks every table: each L2 table and data cluster is a whole
// cluster of the file and no cluster is named twice. It holds one bit per
// cluster of the file (a 60 GB layer full of 64 KiB blocks: 120 KiB).
func (l *Layer) Check() (Stats, error) {
	var st Stats
	st.Clusters = (l.allocEnd - l.dataOff) / l.bs
	used := make([]uint64, (st.Clusters+63)/64)
	claim := func(off uint64, what string, b int64) error {
		c := (int64(off) - l.dataOff) / l.bs
		if c < 0 || c >= st.Clusters {
			return errf(diskerr.ErrCorrupt, "%s of block %d at %d is outside the file", what, b, off)
		}
		if used[c/64]&(1<<(c%64)) != 0 {
			return errf(diskerr.ErrCorrupt, "%s of block %d at %d is named twice", what, b, off)
		}
		used[c/64] |= 1 << (c % 64)
		return nil
	}
	for i, e := range l.l1 {
		if e == 0 {
			continue
		}
		st.Tables++
		if err := claim(e, "the L2 table", int64(i)*l.perL2); err != nil {
			return st, err
		}
	}
	for i := range int64(len(l.l1)) {
		t, err := l.table(i)
		if err != nil {
			return st, err
		}
		if t == nil {
			continue
		}
		for j, e := range t.e {
			b := i*l.perL2 + int64(j)
			switch {
			case e == entryAbsent:
			case e == entryZero:
				st.ZeroBlocks++
			default:
				st.DataBlocks++
				if err := claim(e, "the data cluster", b); err != nil {
					return st, err
				}
			}
		}
	}
	st.Leaked = st.Clusters - st.Tables - st.DataBlocks
	return st, nil
}
