# Sourced by the scripts: puts a Go on PATH (/usr/local/go, else Debian's golang-1.2x) and
# lets it fetch the toolchain go.mod names through the Go module proxy.
for d in /usr/local/go/bin /usr/lib/go-1.23/bin /usr/lib/go-1.22/bin /usr/lib/go-1.21/bin; do
  if [ -x "$d/go" ]; then
    case ":$PATH:" in *":$d:"*) ;; *) export PATH="$d:$PATH" ;; esac
    break
  fi
done
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
