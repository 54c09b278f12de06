# subtracting strings
"b" - "a"
