# unclosed [
[ 1 2
