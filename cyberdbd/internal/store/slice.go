package store

import "github.com/cyberdb/cyberdb/libcyberdb/wire"

// Python's index and slice arithmetic, on int64 indices.

// sliceSpec is a resolved slice: n indices start, start+step, ...
type sliceSpec struct {
	start, step int64
	n           int
}

func (s sliceSpec) index(k int) int { return int(s.start + int64(k)*s.step) }

// resolveSlice is Python's slice(start, stop, step).indices(length)
// followed by the slice length; a missing bound is None.
func resolveSlice(length int64, start, stop, step int64, hasStart, hasStop, hasStep bool) (sliceSpec, error) {
	if !hasStep {
		step = 1
	}
	if step == 0 {
		return sliceSpec{}, errBadRequest("slice step cannot be zero")
	}
	lower, upper := int64(0), length
	if step < 0 {
		lower, upper = -1, length-1
	}
	clamp := func(v int64, has bool, def int64) int64 {
		if !has {
			return def
		}
		if v < 0 {
			if v += length; v < lower {
				v = lower
			}
		} else if v > upper {
			v = upper
		}
		return v
	}
	var def0, def1 int64 = lower, upper
	if step < 0 {
		def0, def1 = upper, lower
	}
	start = clamp(start, hasStart, def0)
	stop = clamp(stop, hasStop, def1)
	var n uint64
	switch {
	case step > 0 && start < stop:
		n = uint64(stop-start-1)/uint64(step) + 1
	case step < 0 && stop < start:
		n = uint64(start-stop-1)/uint64(-step) + 1 // uint64(-MinInt64) is 2^63
	}
	return sliceSpec{start: start, step: step, n: int(n)}, nil
}

// sliceBounds is a slice as given: each bound absent or null is None.
type sliceBounds struct {
	start, stop, step          int64
	hasStart, hasStop, hasStep bool
}

// readBounds reads arguments 1, 2 and 3 as start, stop and step.
func readBounds(a wire.Args) (b sliceBounds, err error) {
	if b.start, b.hasStart, err = a.OptInt(1); err != nil {
		return b, err
	}
	if b.stop, b.hasStop, err = a.OptInt(2); err != nil {
		return b, err
	}
	b.step, b.hasStep, err = a.OptInt(3)
	return b, err
}

func (b sliceBounds) resolve(length int) (sliceSpec, error) {
	return resolveSlice(int64(length), b.start, b.stop, b.step, b.hasStart, b.hasStop, b.hasStep)
}

// sliceArgs reads [t, start?, stop?, step?] and resolves it.
func sliceArgs(a wire.Args, length int) (sliceSpec, error) {
	if err := a.Want(1, 4); err != nil {
		return sliceSpec{}, err
	}
	b, err := readBounds(a)
	if err != nil {
		return sliceSpec{}, err
	}
	return b.resolve(length)
}

// clampBound is how list.index and list.insert read a position: negative
// counts from the end, and the result is clamped to [0, length].
func clampBound(v int64, length int) int {
	if v < 0 {
		if v += int64(length); v < 0 {
			return 0
		}
	}
	if v > int64(length) {
		return length
	}
	return int(v)
}

// itemIndex resolves a single-item index (negative from the end); ok is
// false when it is out of range.
func itemIndex(v int64, length int) (int, bool) {
	if v < 0 {
		v += int64(length)
	}
	if v < 0 || v >= int64(length) {
		return 0, false
	}
	return int(v), true
}
