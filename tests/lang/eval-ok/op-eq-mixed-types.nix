# == between different types is false, not an error
[ (1 == "1") (null == false) ("" == null) ([ ] == { }) (true == 1) (null == null) ]
