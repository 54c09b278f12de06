# unclosed string
"abc
