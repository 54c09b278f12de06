# baseNameOf on strings
map baseNameOf [ "/a/b/c" "/a/b/" "a" "" "/" "a//b" "c.tar.gz" ]
