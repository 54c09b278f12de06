# 00.5 and 01.5 lex as an int followed by .5 (floats start with [1-9] or 0?.)
[ 00.5 01.5 0.5 ]
