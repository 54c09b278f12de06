# a quoted name is shown quoted and escaped in the message, which stays on one line (the fuzzer found it raw)
let "a\nb\t" 1; in 2
