package sandbox

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// A dyno can make the kernel print, and printing can hold a core. The
// memory controller's OOM killer reports every kill at KERN_ERR, in the
// context of the dyno that ran out of memory and so on its core, and the
// kernel writes each record to its consoles as it is logged. A serial
// console (ttyS0 on most cloud VMs, serial-over-LAN on servers) takes a
// byte at a time with interrupts off: at 115,200 baud a 150-byte line
// holds the core for 13 ms, and on an emulated UART each byte is a trap
// to the hypervisor (on the VM this was measured on, 2 to 7 ms a line).
// A memory bomb restarted in a loop so stalls whichever dyno shares its
// core, however small its share of the CPU. The records stay in the
// kernel's log (dmesg, journald) whatever the console's level; the
// manager only stops KERN_ERR and milder ones reaching the consoles.
// Critical ones (oopses, panics) still do, and the kernel raises the
// level itself when it oopses.

// consoleLevel is the console log level the manager sets at most: records
// more severe than it, KERN_CRIT (2) and worse, reach the consoles.
const consoleLevel = 3

const (
	printkSysctl   = "/proc/sys/kernel/printk"
	ignoreLoglevel = "/sys/module/printk/parameters/ignore_loglevel"
)

// quietConsole lowers the kernel's console log level to consoleLevel
// where it is higher. It returns the level it found and whether it
// changed it.
func quietConsole() (was int, changed bool, err error) {
	was, err = readConsoleLevel()
	if err != nil || was <= consoleLevel {
		return was, false, err
	}
	// One number sets the first of the four levels, the console's.
	if err := os.WriteFile(printkSysctl, []byte(strconv.Itoa(consoleLevel)), 0o644); err != nil {
		return was, false, err
	}
	return was, true, nil
}

// readConsoleLevel returns the kernel's console log level.
func readConsoleLevel() (int, error) {
	data, err := os.ReadFile(printkSysctl)
	if err != nil {
		return 0, err
	}
	return consoleLoglevel(string(data))
}

// consoleLoglevel parses /proc/sys/kernel/printk (console, default
// message, minimum console and default console levels) for the first.
func consoleLoglevel(printk string) (int, error) {
	fields := strings.Fields(printk)
	if len(fields) != 4 {
		return 0, fmt.Errorf("%s: want 4 levels, got %q", printkSysctl, printk)
	}
	level, err := strconv.Atoi(fields[0])
	if err != nil {
		return 0, fmt.Errorf("%s: %w", printkSysctl, err)
	}
	return level, nil
}

// consoleIgnoresLevel reports whether the kernel was booted with
// ignore_loglevel, which sends every record to the consoles whatever
// their level.
func consoleIgnoresLevel() bool {
	data, _ := os.ReadFile(ignoreLoglevel)
	return strings.TrimSpace(string(data)) == "Y"
}

// tuneConsole quiets the console and says what it did.
func (m *Manager) tuneConsole() {
	was, changed, err := quietConsole()
	switch {
	case err != nil:
		m.log.Warn("could not lower the kernel's console log level: a dyno's OOM kill prints to the console "+
			"and can hold a core for milliseconds", "err", err)
	case consoleIgnoresLevel():
		m.log.Warn("the kernel was booted with ignore_loglevel: a dyno's OOM kill prints to the console " +
			"and can hold a core for milliseconds")
	case changed:
		m.log.Info("kernel console log level lowered: dynos' OOM kills stay in the kernel log, off the console",
			"was", was, "now", consoleLevel)
	}
}
