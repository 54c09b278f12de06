# overflow through builtins and unary minus is an error too
[ (builtins.mul 4294967296 4294967296) (- (-9223372036854775807 - 1)) ]
