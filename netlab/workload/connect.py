"""agnhost connect, as netlab runs it (images.py): `python -m netlab.workload.connect HOST:PORT TIMEOUT`.

Opens a TCP connection to HOST:PORT (HOST an IPv4 address: there is no DNS in the lab) within TIMEOUT
seconds (0: the kernel's own connect timeout, as agnhost's zero timeout), closes it and exits 0; on
failure prints, as agnhost does, a line starting with a fixed word on stderr (UNKNOWN for a bad
address, REFUSED, TIMEOUT, OTHER: the error) and exits 1. Standard library only.
"""
import errno
import socket
import sys


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    dest, timeout = argv[0], float(argv[1]) if len(argv) > 1 else 0.0
    host, sep, port = dest.rpartition(":")
    if not sep or not port.isdigit() or not host:
        sys.stderr.write(f"UNKNOWN: address {dest}: missing port in address\n" if not sep else
                         f"UNKNOWN: address {dest}: invalid port\n")
        return 1
    try:
        socket.inet_aton(host.strip("[]"))
    except OSError:
        sys.stderr.write(f"DNS: lookup {host}: netlab's connect dials IPv4 addresses only (no DNS in the lab)\n")
        return 1
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout or None):
            return 0
    except socket.timeout:
        sys.stderr.write("TIMEOUT\n")
    except OSError as e:
        if e.errno == errno.ECONNREFUSED:
            sys.stderr.write("REFUSED\n")
        else:
            sys.stderr.write(f"OTHER: dial tcp {dest}: {e.strerror or e}\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
