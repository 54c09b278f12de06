# or cannot be a let-bound variable
let or = 1; in or
