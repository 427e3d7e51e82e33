// Package procstat reads what the benchmarks measure of a process from
// /proc: CPU time, peak memory, its children (a collector that forks
// plugins), and the kernel's count of datagrams dropped at a UDP socket.
package procstat

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of CPU times in /proc/PID/stat: 100 on
// every Linux architecture Go runs on.
const clockTicks = 100

// stat holds the fields of /proc/PID/stat the benchmarks use.
type stat struct {
	ppid         int
	utime, stime uint64
}

func readStat(pid int) (stat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return stat{}, err
	}
	// The command name, in parentheses, may hold spaces: fields count from
	// the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return stat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	var s stat
	s.ppid, _ = strconv.Atoi(f[1])
	s.utime, _ = strconv.ParseUint(f[11], 10, 64)
	s.stime, _ = strconv.ParseUint(f[12], 10, 64)
	return s, nil
}

// Tree is a process and its descendants.
func Tree(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, err := readStat(p); err == nil {
			children[s.ppid] = append(children[s.ppid], p)
		}
	}
	tree := []int{pid}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	return tree
}

// CPU is the user and system time used so far by pid and its descendants
// (children that exited and were reaped are left out).
func CPU(pid int) (time.Duration, error) {
	var ticks uint64
	for i, p := range Tree(pid) {
		s, err := readStat(p)
		if err != nil {
			if i == 0 {
				return 0, err
			}
			continue // a child that just exited
		}
		ticks += s.utime + s.stime
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// PeakRSS is the peak resident memory of pid (VmHWM).
func PeakRSS(pid int) (uint64, error) {
	return fieldKB(fmt.Sprintf("/proc/%d/status", pid), "VmHWM:")
}

// PSS is the proportional memory of pid and its descendants now: memory
// they share (a pipe between a collector and its plugins) counts once.
func PSS(pid int) (uint64, error) {
	var total uint64
	for i, p := range Tree(pid) {
		v, err := fieldKB(fmt.Sprintf("/proc/%d/smaps_rollup", p), "Pss:")
		if err != nil {
			if i == 0 {
				return 0, err
			}
			continue
		}
		total += v
	}
	return total, nil
}

// fieldKB reads a "Key: N kB" line of a /proc file, in bytes.
func fieldKB(path, key string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, key); ok {
			v, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: %q: %w", path, line, err)
			}
			return v << 10, nil
		}
	}
	return 0, fmt.Errorf("%s: no %s line", path, key)
}

// UDPDrops is the kernel's count of datagrams dropped at the UDP sockets
// bound to port (IPv4 and IPv6), summed; found is false when none is bound.
func UDPDrops(port int) (drops uint64, found bool, err error) {
	want := fmt.Sprintf(":%04X", port)
	for _, file := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(file)
		if err != nil {
			return 0, false, err
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 13 || !strings.HasSuffix(f[1], want) {
				continue
			}
			n, err := strconv.ParseUint(f[len(f)-1], 10, 64)
			if err != nil {
				return 0, false, fmt.Errorf("%s: %q: %w", file, line, err)
			}
			drops += n
			found = true
		}
	}
	return drops, found, nil
}

// Machine describes the machine the benchmarks run on.
type Machine struct {
	CPU     string
	Cores   int
	Memory  uint64
	Kernel  string
	Go      string
	LoadAvg string
	// RmemDefault and RmemMax are the kernel's socket receive buffer
	// default and the most a program may ask without CAP_NET_ADMIN.
	RmemDefault, RmemMax uint64
}

// Describe reads the machine's description.
func Describe() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), CPU: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPU = cpuName(string(b))
	}
	m.Memory, _ = fieldKB("/proc/meminfo", "MemTotal:")
	ostype, _ := os.ReadFile("/proc/sys/kernel/ostype")
	release, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	m.Kernel = strings.TrimSpace(string(ostype)) + " " + strings.TrimSpace(string(release)) + " " + runtime.GOARCH
	m.RmemDefault = sysctl("net/core/rmem_default")
	m.RmemMax = sysctl("net/core/rmem_max")
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	return m
}

// cpuName names the first processor of a /proc/cpuinfo with its family,
// model and stepping: a VM's model name is often the vendor's line alone
// ("AMD EPYC"), and two runs on boxes of that name had nfacctd at 7.1 and
// 4.4 µs/flow at its best IPFIX rate (2026-12-07-1602 and 1827), flowgate
// at 2.9 and 3.1 at 200 000/s.
func cpuName(cpuinfo string) string {
	fields := map[string]string{}
	for _, line := range strings.Split(cpuinfo, "\n") {
		if strings.TrimSpace(line) == "" && len(fields) > 0 {
			break // the end of the first processor
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	name := fields["model name"]
	if name == "" {
		return "unknown"
	}
	if fields["cpu family"] == "" {
		return name
	}
	return fmt.Sprintf("%s (family %s, model %s, stepping %s)", name, fields["cpu family"], fields["model"], fields["stepping"])
}

// sysctl reads a numeric kernel setting (0 when unreadable).
func sysctl(name string) uint64 {
	b, _ := os.ReadFile("/proc/sys/" + name)
	v, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return v
}
