// Command probe tries, from inside a sandboxed job, what the sandbox must
// forbid. The executor tests build it statically and copy it into the
// workspace, the one place a job can run it from.
//
//	probe connect HOST:PORT [DEVICE]  open a TCP connection, from a socket
//	                                  bound to DEVICE if given
//	probe tiocsti                     push a byte into a terminal with TIOCSTI
//
// It prints what happened and exits 0 when the attempt failed, 1 when it
// worked, and 2 on misuse. It also reports what a job's network looks like,
// exiting 0:
//
//	probe gateways        print the default routes' gateways, one a line
//	probe interfaces      print each interface: name, flags, addresses
//	probe resolve NAME    print NAME's addresses, or why it did not resolve
//
// For a test that needs a listener in another network namespace:
//
//	probe listen HOST:PORT  print "LISTENING" and the address, then
//	                        "ACCEPTED" and the remote address for each
//	                        connection, until killed
package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

func main() {
	switch {
	case (len(os.Args) == 3 || len(os.Args) == 4) && os.Args[1] == "connect":
		d := net.Dialer{Timeout: 5 * time.Second}
		via := "" // one line per attempt, so that attempts may run at once
		if len(os.Args) == 4 {
			dev := os.Args[3]
			via = " (from a socket bound to " + dev + ")"
			d.Control = func(_, _ string, c syscall.RawConn) error {
				var err error
				if cerr := c.Control(func(fd uintptr) {
					err = syscall.SetsockoptString(int(fd), syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, dev)
				}); cerr != nil {
					return cerr
				}
				return err
			}
		}
		c, err := d.Dial("tcp", os.Args[2])
		if err != nil {
			fmt.Printf("connect failed: %v%s\n", err, via)
			return
		}
		c.Close()
		fmt.Printf("CONNECTED to %s%s\n", os.Args[2], via)
		os.Exit(1)
	case len(os.Args) == 2 && os.Args[1] == "gateways":
		gateways()
	case len(os.Args) == 2 && os.Args[1] == "interfaces":
		ifs, err := net.Interfaces()
		if err != nil {
			fmt.Println("interfaces:", err)
			return
		}
		for _, i := range ifs {
			addrs, _ := i.Addrs()
			fmt.Println(i.Name, i.Flags, addrs)
		}
	case len(os.Args) == 3 && os.Args[1] == "resolve":
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		addrs, err := net.DefaultResolver.LookupHost(ctx, os.Args[2])
		if err != nil {
			fmt.Println("resolve failed:", err)
			return
		}
		fmt.Println("RESOLVED", addrs)
	case len(os.Args) == 3 && os.Args[1] == "listen":
		ln, err := net.Listen("tcp", os.Args[2])
		if err != nil {
			fmt.Println("listen failed:", err)
			os.Exit(1)
		}
		fmt.Println("LISTENING", ln.Addr())
		for {
			c, err := ln.Accept()
			if err != nil {
				fmt.Println("accept failed:", err)
				os.Exit(1)
			}
			fmt.Println("ACCEPTED", c.RemoteAddr())
			c.Close()
		}
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
		fmt.Fprintln(os.Stderr, "usage: probe connect HOST:PORT [DEVICE] | tiocsti | gateways | interfaces | resolve NAME | listen HOST:PORT")
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

// gateways prints the gateways of the default routes in /proc/net/route
// (little-endian hex) and /proc/net/ipv6_route.
func gateways() {
	for _, f := range []struct {
		path           string
		dst, gw, width int
	}{{"/proc/net/route", 1, 2, 11}, {"/proc/net/ipv6_route", 0, 4, 10}} {
		file, err := os.Open(f.path)
		if err != nil {
			continue // no IPv6
		}
		sc := bufio.NewScanner(file)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < f.width || strings.Trim(fields[f.dst], "0") != "" {
				continue
			}
			b, err := hex.DecodeString(fields[f.gw])
			if err != nil || strings.Trim(fields[f.gw], "0") == "" {
				continue
			}
			if len(b) == 4 {
				b[0], b[1], b[2], b[3] = b[3], b[2], b[1], b[0]
			}
			if a, ok := netip.AddrFromSlice(b); ok {
				fmt.Println(a)
			}
		}
		file.Close()
	}
}
