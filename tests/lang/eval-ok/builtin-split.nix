# split returns strings interleaved with capture-group lists
[ (builtins.split "," "a,b,,c") (builtins.split "(a)|(b)" "xaybz") (builtins.split "([[:digit:]]+)" "a12b3") (builtins.split "x" "none") ]
