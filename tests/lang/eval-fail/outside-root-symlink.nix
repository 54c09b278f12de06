# a symlink inside the root that leads outside it is refused
builtins.readFile ./lib/escape-link.md
