#!/bin/sh
# A host provider script for the exec provider's tests. It keeps one
# file per host in $HOSTS_STATE; $HOSTS_MODE makes it misbehave.
set -eu
state=${HOSTS_STATE:?}
case "${HOSTS_MODE:-}" in
fail)    echo "quota exceeded: no more machines in region test-1" >&2; exit 3 ;;
badjson) echo "creating machine..."; exit 0 ;;
noid)    echo '{"handle": "vm-1"}'; exit 0 ;;
slow)    sleep 60 & wait; exit 0 ;;
noisy)   i=0; while [ $i -lt 300 ]; do echo "line $i of a very chatty cloud CLI" >&2; i=$((i+1)); done; exit 1 ;;
esac
case "$1" in
provision)
	handle="vm-$(date +%s%N)"
	printf '%s\n' "$GRID_HOST_ID" "$GRID_JOIN" "$GRID_HOST_PASSWORD" > "$state/$handle"
	printf '{"id": "%s", "handle": "%s", "addr": "192.0.2.10"}\n' "$GRID_HOST_ID" "$handle"
	;;
release)
	[ "$#" -eq 3 ] || { echo "usage: $0 release HANDLE ID" >&2; exit 2; }
	[ "$3" = "$GRID_HOST_ID" ] || { echo "id $3 but GRID_HOST_ID $GRID_HOST_ID" >&2; exit 2; }
	rm -f "$state/$2"
	;;
*)
	echo "unknown command $1" >&2; exit 2 ;;
esac
