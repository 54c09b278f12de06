# // binds tighter than == and looser than +
[ ({ a = 1; } // { b = 2; } == { a = 1; b = 2; }) ({ s = "x" + "y"; } // { }) ]
