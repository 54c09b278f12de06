# calling a string
"str" "arg"
