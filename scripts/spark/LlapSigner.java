// A stand-in for Hive LLAP's LlapSigner, which the pyspark wheel lacks (hive-llap-common is not among its jars).
// Hive's FunctionRegistry names LlapSigner.Signable in the constructor of its get_splits function (an LLAP feature
// that Spark does not offer), so without this interface the registry cannot load: the Thrift server closing a
// session on a handler thread that holds no Hive object registers Hive's functions, fails with NoClassDefFoundError,
// and leaves the registration pending, so every later session close waits forever (seen here; SPARK-51041 is
// the same hang in Spark's own tests). Only its name is needed; nothing calls it.
package org.apache.hadoop.hive.llap.security;

public interface LlapSigner {
  interface Signable {}
}
