# attribute values are lazy; selecting one does not force others
({ a = throw "no"; b = 1; c = abort "no"; }).b
