# dirOf on strings
map dirOf [ "/a/b/c" "/a/b/" "a" "" "/" "a/b" "/a" "a//b" ]
