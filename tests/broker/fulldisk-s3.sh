#!/bin/sh
# fulldisk.sh on the s3 backend: its staging directory fills up.
FULLDISK_BACKEND=s3
export FULLDISK_BACKEND
. "$(dirname "$0")/fulldisk.sh"
