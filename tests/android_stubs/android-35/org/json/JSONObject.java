package org.json;
public class JSONObject { public JSONObject(String s) throws JSONException {} public JSONArray getJSONArray(String k) throws JSONException { return null; }
  public String getString(String k) throws JSONException { return null; } }
