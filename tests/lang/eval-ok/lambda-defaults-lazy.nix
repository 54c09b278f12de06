# unused default values are never evaluated
let f = { a ? throw "unused default", b }: b; in f { b = "ok"; a = 1; }
