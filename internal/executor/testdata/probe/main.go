// Command probe tries, from inside a sandboxed job, what the sandbox must
// forbid. The executor tests build it statically and copy it into the
// workspace, the one place a job can run it from.
//
//	probe connect HOST:PORT   open a TCP connection
//	probe tiocsti             push a byte into a terminal with TIOCSTI
//
// It prints what happened and exits 0 when the attempt failed, 1 when it
// worked, and 2 on misuse.
package main

import (
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"
)

func main() {
	switch {
	case len(os.Args) == 3 && os.Args[1] == "connect":
		c, err := net.DialTimeout("tcp", os.Args[2], 5*time.Second)
		if err != nil {
			fmt.Println("connect failed:", err)
			return
		}
		c.Close()
		fmt.Println("CONNECTED")
		os.Exit(1)
	case len(os.Args) == 2 && os.Args[1] == "tiocsti":
		injected := false
		for fd := 0; fd <= 2; fd++ {
			injected = tiocsti(fmt.Sprintf("fd %d", fd), fd) || injected
		}
		// The controlling terminal, whatever the standard descriptors are.
		if tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0); err != nil {
			fmt.Println("/dev/tty:", err)
		} else {
			injected = tiocsti("/dev/tty", int(tty.Fd())) || injected
		}
		if injected {
			os.Exit(1)
		}
	default:
		fmt.Fprintln(os.Stderr, "usage: probe connect HOST:PORT | probe tiocsti")
		os.Exit(2)
	}
}

func tiocsti(name string, fd int) bool {
	c := byte('#')
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.TIOCSTI, uintptr(unsafe.Pointer(&c)))
	if errno != 0 {
		fmt.Printf("%s: TIOCSTI failed: %v\n", name, errno)
		return false
	}
	fmt.Printf("%s: TIOCSTI INJECTED\n", name)
	return true
}
