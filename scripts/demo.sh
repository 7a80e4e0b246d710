#!/bin/sh
# The main demonstration: a VM keeps its MAC, IP and open connections while
# it migrates live between two hosts (scripts/demo.py says how).
exec /usr/bin/python3 "$(dirname "$0")/demo.py" "$@"
