#!/bin/sh
# dracut cmdline hook: root=controller means the controller finds and mounts
# the root itself, in the mount hook; tell dracut the root= is taken care of.
if [ "$root" = "controller" ]; then
    rootok=1
fi
