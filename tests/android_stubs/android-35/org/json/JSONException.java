package org.json;
/** org.json.JSONException (android.jar): a checked exception, unlike the one on Maven Central. */
public class JSONException extends Exception { public JSONException(String s) { super(s); } }
