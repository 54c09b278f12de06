# split with a regex that can match empty
builtins.split "x*" "ab"
