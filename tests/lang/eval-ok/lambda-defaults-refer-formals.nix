# default values may refer to other formals
let f = { a ? b + 1, b ? 2, c ? a * b }: [ a b c ]; in [ (f { }) (f { b = 10; }) (f { a = 0; }) ]
