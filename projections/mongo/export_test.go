package mongo

// Fail is fail, for the error classification tests.
var Fail = fail
