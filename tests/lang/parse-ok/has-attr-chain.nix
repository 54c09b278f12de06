# a ? b ? c parses as (a ? b) ? c
let a = { }; in a ? b ? c
