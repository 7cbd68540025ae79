package options

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cyberdb/cyberdb/cyberdbd/internal/persist"
	"github.com/cyberdb/cyberdb/cyberdbd/internal/server"
)

// The flag values of the fields whose type pflag does not have. Each
// writes the field it is bound to, and prints it as its flag takes it, so
// that --help shows the defaults and a reload logs changes in flag syntax.

// Size is a number of bytes; as a flag it accepts KiB, MiB and GiB
// suffixes (and K, M, G, B).
type Size int64

var sizeUnits = []struct {
	s string
	n int64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}}

// String prints s in the largest binary unit that divides it, e.g. 16MiB.
func (s Size) String() string {
	v := int64(s)
	for _, u := range sizeUnits[:3] {
		if v >= u.n && v%u.n == 0 {
			return strconv.FormatInt(v/u.n, 10) + u.s
		}
	}
	return strconv.FormatInt(v, 10)
}

func (s *Size) Set(v string) error {
	mult := int64(1)
	t := strings.TrimSpace(v)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.s) {
			mult, t = u.n, strings.TrimSuffix(t, u.s)
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("want a size such as 16MiB, 512KiB or 65536")
	}
	*s = Size(n * mult)
	return nil
}

func (s *Size) Type() string { return "size" }

// fileModeValue is --socket-mode: an octal file mode.
type fileModeValue struct{ m *os.FileMode }

func (v fileModeValue) String() string {
	if v.m == nil {
		return ""
	}
	return fmt.Sprintf("%04o", uint32(*v.m))
}

func (v fileModeValue) Set(s string) error {
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o777 {
		return fmt.Errorf("want an octal file mode such as 0660")
	}
	*v.m = os.FileMode(m)
	return nil
}

func (fileModeValue) Type() string { return "mode" }

// levelValue is --log-level.
type levelValue struct{ l *slog.Level }

func (v levelValue) String() string {
	if v.l == nil {
		return ""
	}
	return strings.ToLower(v.l.String())
}

func (v levelValue) Set(s string) error {
	if err := v.l.UnmarshalText([]byte(s)); err != nil {
		return fmt.Errorf("want debug, info, warn or error")
	}
	return nil
}

func (levelValue) Type() string { return "level" }

// fsyncValue is --fsync.
type fsyncValue struct{ f *persist.Fsync }

func (v fsyncValue) String() string {
	if v.f == nil {
		return ""
	}
	return v.f.String()
}

func (v fsyncValue) Set(s string) error {
	f, err := persist.ParseFsync(s)
	if err != nil {
		return err
	}
	*v.f = f
	return nil
}

func (fsyncValue) Type() string { return "policy" }

// maxMemoryValue is --max-memory: a size, 0 for none, or auto
// (AutoMaxMemory), which prints as "auto".
type maxMemoryValue struct{ s *Size }

func (v maxMemoryValue) String() string {
	if v.s == nil {
		return ""
	}
	if *v.s == AutoMaxMemory {
		return "auto"
	}
	return v.s.String()
}

func (v maxMemoryValue) Set(s string) error {
	if strings.TrimSpace(s) == "auto" {
		*v.s = AutoMaxMemory
		return nil
	}
	if err := v.s.Set(s); err != nil {
		return fmt.Errorf("want a size such as 4GiB or 512MiB, 0 for no limit, or auto")
	}
	return nil
}

func (maxMemoryValue) Type() string { return "size" }

// ioLoopsValue is --io-loops: a number, or auto (AutoIOLoops). Its
// default prints as "auto", not as the number of the machine the help
// was printed on (the manual page is made on the build machine).
type ioLoopsValue struct{ n *int }

func (v ioLoopsValue) String() string {
	if v.n == nil {
		return ""
	}
	if *v.n == AutoIOLoops {
		return "auto"
	}
	return strconv.Itoa(*v.n)
}

func (v ioLoopsValue) Set(s string) error {
	if s == "auto" {
		*v.n = AutoIOLoops
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return fmt.Errorf("want a number of loops, 0 for a goroutine per connection, or auto")
	}
	*v.n = n
	return nil
}

func (ioLoopsValue) Type() string { return "int" }

// allowValue is --allow: networks, comma-separated or repeated. The first
// Set replaces the default, later ones add, as pflag's slices do.
type allowValue struct {
	p   *[]netip.Prefix
	set bool
}

func (v *allowValue) String() string {
	if v.p == nil {
		return ""
	}
	parts := make([]string, len(*v.p))
	for i, p := range *v.p {
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}

func (v *allowValue) Set(s string) error {
	var ps []netip.Prefix
	for _, spec := range strings.Split(s, ",") {
		p, err := parseAllow(strings.TrimSpace(spec))
		if err != nil {
			return err
		}
		ps = append(ps, p)
	}
	if !v.set {
		*v.p, v.set = nil, true
	}
	*v.p = append(*v.p, ps...)
	return nil
}

func (*allowValue) Type() string { return "strings" }

// parseAllow reads an --allow entry: a CIDR, or one address.
func parseAllow(spec string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(spec); err == nil {
		if p.Addr().Is4In6() {
			// Peers are matched in their IPv4 form: ::ffff:10.0.0.0/104 is 10.0.0.0/8.
			if p.Bits() < 96 {
				return netip.Prefix{}, fmt.Errorf("--allow %q: an IPv4-mapped network needs at least 96 bits", spec)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	if a, err := netip.ParseAddr(spec); err == nil && a.Zone() == "" {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return netip.Prefix{}, fmt.Errorf("--allow %q: want a network such as 10.0.0.0/8, 192.0.2.7 or 2001:db8::/32", spec)
}

// outputLimitValue is --output-limit: HARD[,SOFT,DURATION], or 0.
type outputLimitValue struct{ lim *server.OutputLimit }

func (v outputLimitValue) String() string {
	if v.lim == nil {
		return ""
	}
	if v.lim.Hard == 0 && v.lim.Soft == 0 {
		return "0"
	}
	return fmt.Sprintf("%s,%s,%s", Size(v.lim.Hard), Size(v.lim.Soft), v.lim.SoftFor)
}

func (v outputLimitValue) Set(s string) error {
	parts := strings.Split(s, ",")
	if len(parts) != 1 && len(parts) != 3 {
		return fmt.Errorf("want HARD or HARD,SOFT,DURATION, such as 64MiB,8MiB,10s (0 for no limit)")
	}
	var hard, soft Size
	if err := hard.Set(parts[0]); err != nil {
		return err
	}
	lim := server.OutputLimit{Hard: int(hard)}
	if len(parts) == 3 {
		if err := soft.Set(parts[1]); err != nil {
			return err
		}
		d, err := time.ParseDuration(strings.TrimSpace(parts[2]))
		if err != nil || d < 0 {
			return fmt.Errorf("%q: want a duration such as 10s", parts[2])
		}
		lim.Soft, lim.SoftFor = int(soft), d
	}
	if err := validOutputLimit(lim); err != nil {
		return err
	}
	*v.lim = lim
	return nil
}

func (outputLimitValue) Type() string { return "limit" }

// validOutputLimit checks an output limit's sizes.
func validOutputLimit(lim server.OutputLimit) error {
	if lim.Hard < 0 || lim.Soft < 0 || lim.SoftFor < 0 {
		return fmt.Errorf("sizes and the duration must not be negative")
	}
	if lim.Hard > 0 && lim.Soft > lim.Hard {
		return fmt.Errorf("the soft size %s is over the hard size %s", Size(lim.Soft), Size(lim.Hard))
	}
	return nil
}
